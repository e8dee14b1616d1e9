// goTalk real-browser measure of what the web page costs per message it
// receives (issue 19): HTTP requests and WebSocket frames the page sends,
// over the long-poll (?transport=poll) and over the WebSocket (ws.js).
// A page logs in, opens the conversation with a sender and goes quiet; a
// sender on a raw line-protocol socket then sends it 100 messages at once
// (one write of 100 SEND lines), or 20 one by one (each sent once the page
// shows the one before and has gone quiet again, so each arrives alone).
// Counted, from just before the first SEND until the page shows them all
// and has gone quiet again (so the acknowledgement, read marker and refresh
// the last message causes are counted too): every request the browser
// context makes (Playwright's request events) and every WebSocket frame it
// sends (framesent). The test asserts on content: all messages shown, in
// order, once each, acknowledged; over WebSocket no HTTP request and no new
// connection in the window. It prints one `page cost:` line per case, and a
// breakdown by path or command; the figures are counts, never times.
// Run from the repository root: node --test tests/browser/
import { test as testCase, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import readline from 'node:readline';
import {
  TEST_TIMEOUT, STEP_TIMEOUT, startServer, stopServer, eventually, tid, messageTexts, authAs,
  expectLoggedInAs, openContact, form, guarded, launchBrowser, requireBinary,
} from './helpers.mjs';

const PASSWORD = 'page-cost-secret';
const BURST = 100;  // messages sent in one write
const SPACED = 20;  // messages sent one by one
const TRANSPORTS = [
  // The long-poll page refreshes the conversation list at most once a second
  // after each wake-up (convs.js REFRESH_GAP_MS): quiet means longer than that.
  { name: 'long-poll', kind: 'poll', query: '?transport=poll', quietMs: 1200 },
  // Over the WebSocket nothing waits on a timer: every frame's reply is tracked.
  { name: 'WebSocket', kind: 'ws', query: '', quietMs: 300 },
];

/**
 * A client on the line protocol over a raw socket: request(obj) writes one
 * JSON line and resolves with its reply; requestAll(list) writes them all in
 * one write. Replies come in request order; events (read markers) are skipped.
 */
async function lineClient(base) {
  const { hostname, port } = new URL(base);
  const sock = net.connect({ host: hostname, port: Number(port) });
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  const waiting = [];
  const early = [];
  readline.createInterface({ input: sock }).on('line', (line) => {
    const obj = JSON.parse(line);
    if (!('ok' in obj)) return;
    const w = waiting.shift();
    if (w) w(obj); else early.push(obj);
  });
  const next = () => new Promise((resolve) => { if (early.length) resolve(early.shift()); else waiting.push(resolve); });
  const requestAll = (list) => {
    const replies = list.map(() => next());
    sock.write(list.map((o) => JSON.stringify(o) + '\n').join(''));
    return Promise.all(replies);
  };
  return {
    request: async (obj) => (await requestAll([obj]))[0],
    requestAll,
    close: () => sock.destroy(),
  };
}

/**
 * Watches what a browser context sends: HTTP requests (path, and for /sync
 * whether it long-polls), WebSocket connections and the frames sent on them,
 * with what is still in flight, so the test can tell when the page is quiet.
 * Only what happens while `recording` is counted.
 */
function watchTraffic(context) {
  const t = {
    recording: false, requests: [], frames: [], framesReceived: 0, sockets: 0, wakeups: [],
    inflight: new Set(), tags: new Set(), lastActivity: Date.now(),
  };
  const touch = () => { t.lastActivity = Date.now(); };
  context.on('request', (r) => {
    touch();
    t.inflight.add(r);
    if (!t.recording) return;
    const fields = new URLSearchParams(r.postData() || '');
    t.requests.push({ path: new URL(r.url()).pathname, wait: fields.get('wait'), after: fields.get('after') });
  });
  const done = (r) => { touch(); t.inflight.delete(r); };
  context.on('requestfinished', (r) => {
    done(r);
    // How many messages each long-poll wake-up brought (counted in the window only).
    if (!t.recording || new URL(r.url()).pathname !== '/sync') return;
    const batch = r.response().then((res) => res && res.json()).then((list) => (Array.isArray(list) ? list.length : -1), () => -1);
    t.wakeups.push(batch);
  });
  context.on('requestfailed', done);
  context.on('page', (page) => page.on('websocket', (ws) => {
    touch();
    if (t.recording) t.sockets += 1;
    ws.on('framesent', (f) => {
      touch();
      let obj = null;
      try { obj = JSON.parse(f.payload); } catch (_) { /* not JSON: counted as sent, no reply tracked */ }
      if (obj && obj.tag !== undefined) t.tags.add(obj.tag);
      if (t.recording) t.frames.push(obj || { cmd: '(not JSON)' });
    });
    ws.on('framereceived', (f) => {
      touch();
      let obj = null;
      try { obj = JSON.parse(f.payload); } catch (_) { /* ignored */ }
      if (obj && obj.tag !== undefined) t.tags.delete(obj.tag);
      if (t.recording) t.framesReceived += 1;
    });
  }));
  /** The long-poll waiting for news: a /sync that asked to wait. */
  t.longPolls = () => [...t.inflight].filter((r) => {
    const u = new URL(r.url());
    return u.pathname === '/sync' && new URLSearchParams(r.postData() || '').get('wait') !== '0';
  });
  /** Resolves once nothing but the long-poll is in flight, no reply is awaited, and nothing moved for quietMs. */
  t.quiet = (transport) => eventually(() => {
    const polls = t.longPolls();
    const others = [...t.inflight].filter((r) => !polls.includes(r)).map((r) => new URL(r.url()).pathname);
    assert.deepEqual(others, [], 'requests in flight');
    assert.equal(polls.length, transport.kind === 'poll' ? 1 : 0, 'long-polls waiting');
    assert.deepEqual([...t.tags], [], 'WebSocket requests awaiting their reply');
    assert.ok(Date.now() - t.lastActivity >= transport.quietMs, 'the page is not quiet yet');
  }, 4 * STEP_TIMEOUT, 50);
  return t;
}

/** "{a: 2, b: 1}" as "a 2, b 1", in the order first seen. */
function tally(list) {
  const counts = new Map();
  for (const x of list) counts.set(x, (counts.get(x) || 0) + 1);
  return [...counts].map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
}

describe('what the web page costs per received message, in a real browser', { timeout: 10 * TEST_TIMEOUT }, () => {
  let server;
  let browser;
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

  /**
   * One case: a reader's page over `transport` receives `count` messages from
   * a line-protocol sender, all in one write (`burst`) or one at a time.
   */
  async function measure(transport, label, count, burst) {
    const reader = `${transport.kind}-${burst ? 'burst' : 'spaced'}-reader`;
    const sender = `${transport.kind}-${burst ? 'burst' : 'spaced'}-sender`;
    const line = await lineClient(server.base);
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    try {
      assert.equal((await line.request({ cmd: 'register', username: sender, password: PASSWORD })).ok, true);
      assert.equal((await line.request({ cmd: 'login', username: sender, password: PASSWORD })).ok, true);

      context.setDefaultTimeout(STEP_TIMEOUT);
      const traffic = watchTraffic(context);
      const page = await context.newPage();
      page.errors = [];
      page.on('pageerror', (e) => page.errors.push(e.message));
      await page.goto(server.base + '/' + transport.query);
      await authAs(page, reader, PASSWORD, true);
      await expectLoggedInAs(page, reader);
      await openContact(page, sender);
      // Idle and connected: the page says so, and only its long-poll (if any) is out.
      await eventually(async () => {
        assert.equal(await page.getAttribute(tid('connection-status'), 'data-transport'), transport.kind);
        assert.equal(await page.getAttribute(tid('connection-status'), 'data-state'), 'live');
      });
      await traffic.quiet(transport);

      const texts = Array.from({ length: count }, (_, i) => `${label} ${String(i + 1).padStart(3, '0')}`);
      const sends = texts.map((content) => ({ cmd: 'send', to: reader, content }));
      const shows = (n) => eventually(async () => assert.deepEqual(await messageTexts(page), texts.slice(0, n)),
        4 * STEP_TIMEOUT);
      const ids = [];
      traffic.recording = true;
      if (burst) {
        for (const r of await line.requestAll(sends)) { assert.equal(r.ok, true, JSON.stringify(r)); ids.push(r.id); }
        await shows(count);
      } else {
        for (let i = 0; i < count; i++) {
          const r = await line.request(sends[i]);
          assert.equal(r.ok, true, JSON.stringify(r));
          ids.push(r.id);
          await shows(i + 1);
          await traffic.quiet(transport);
        }
      }
      await traffic.quiet(transport);
      traffic.recording = false;

      // Content: all shown, in order, once each, all incoming, and acknowledged.
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'the sender got ids out of order');
      assert.deepEqual(await messageTexts(page), texts, 'a message missing, shown twice or out of order');
      const directions = await page.$$eval(`${tid('message-list')} ${tid('message')}`, (els) => els.map((e) => e.dataset.direction));
      assert.deepEqual(directions, texts.map(() => 'in'));
      const session = JSON.parse(await page.evaluate(() => localStorage.getItem('gotalk:session')));
      await eventually(async () => assert.deepEqual(
        await form(server.base, '/sync', { token: session.token, id: String(session.id) }), [], 'not acknowledged'));
      if (transport.kind === 'ws') {
        assert.deepEqual(traffic.requests.map((r) => r.path), [], 'HTTP requests over the WebSocket transport');
        assert.equal(traffic.sockets, 0, 'the page opened another WebSocket in the window');
      } else {
        assert.equal(traffic.sockets, 0, 'the long-poll page opened a WebSocket');
        assert.deepEqual(traffic.frames, []);
      }
      assert.deepEqual(page.errors, []);

      const requests = traffic.requests.length;
      const frames = traffic.frames.length;
      const perMessage = ((requests + frames) / count).toFixed(2);
      const summary = `page cost: ${transport.name} ${label}: ${requests} HTTP requests, ${frames} WebSocket frames sent, `
        + `for ${count} messages = ${perMessage} per message`;
      const paths = traffic.requests.map((r) => (r.path === '/sync' ? `${r.path} (wait ${r.wait})` : r.path));
      // Where the page acknowledged: over the long-poll, the messages each /sync
      // brought (the next /sync's `after` acknowledges them); over the WebSocket,
      // the ordinal of the message each ACK reached.
      const batches = transport.kind === 'poll'
        ? `messages per /sync: ${(await Promise.all(traffic.wakeups)).join(' ')}`
        : `ACKs reached messages ${traffic.frames.filter((f) => f.cmd === 'ack').map((f) => ids.indexOf(f.upto) + 1).join(' ')}`;
      const detail = `page cost: ${transport.name} ${label}: requests by path: ${tally(paths)}; `
        + `frames sent by command: ${tally(traffic.frames.map((f) => f.cmd))}; frames received: ${traffic.framesReceived}; ${batches}`;
      console.log(summary);
      console.log(detail);
    } finally {
      line.close();
      await context.close();
    }
  }

  for (const transport of TRANSPORTS) {
    test(`${transport.name}: ${BURST} messages at once`, { timeout: 2 * TEST_TIMEOUT },
      () => measure(transport, `${BURST} at once`, BURST, true));
    test(`${transport.name}: ${SPACED} messages one by one`, { timeout: 2 * TEST_TIMEOUT },
      () => measure(transport, `${SPACED} one by one`, SPACED, false));
  }
});
