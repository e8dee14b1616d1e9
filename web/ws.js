// goTalk web chat page: the WebSocket transport (served at /ws.js, after
// /transport.js and before /app.js). One connection to GET /ws carries every
// request after log in (send, history, read, conversations), and the server
// pushes messages, sent copies and read markers as they happen. It has the
// long-poll's face (see transport.js), so app.js does not care which runs.
//  - Each request is one text message of the line protocol's JSON form with
//    a numeric tag; its reply carries the tag back.
//  - After AUTH the page catches up with SYNC after=<highest id saved>, page
//    by page until empty, then acknowledges pushed messages with ACK once
//    app.js has saved them. While catching up, a push never moves the
//    acknowledged id (a SYNC page below it may still be coming).
//  - When the connection drops it reconnects with backoff and resumes the
//    same way, so nothing is lost; app.js recognises a message it already
//    has by its id, so nothing is shown twice.
//  - When the very first connection cannot be opened (a proxy that strips
//    Upgrade, a server started with --no-websocket) the page falls back to
//    the long-poll (hooks.onFallback).
"use strict";
(function () {
  const ns = (window.gotalk = window.gotalk || {});
  const { HttpError, statusOf, REQUEST_TIMEOUT_MS, MAX_BACKOFF_MS } = ns;
  const SYNC_PAGE = 100;

  function wsTransport(session, hooks) {
    const t = { kind: "ws", live: true };
    let running = false;
    let sock = null;
    let opened = false;     // a connection was ever opened: failures now mean reconnect, not fall back
    let backoff = 1000;
    let retryTimer = null;
    let nextTag = 0;
    const waiting = new Map(); // tag -> {resolve, reject, timer}
    let processed = 0;      // highest message id saved; SYNC after it acknowledges up to it
    let acked = 0;          // highest id acknowledged
    let caughtUp = false;   // the SYNC pages of this connection are all in
    let ackBusy = false;
    let ready = null;       // {promise, resolve}: settles when the connection is logged in
    let batch = [];         // events received and not yet handed over
    let batchTimer = null;
    const newReady = () => { let resolve; const promise = new Promise((r) => { resolve = r; }); ready = { promise, resolve }; };
    newReady();

    const lost = () => new HttpError(0, "The connection to the server was lost.");
    function failAll() {
      for (const w of waiting.values()) { clearTimeout(w.timer); w.reject(lost()); }
      waiting.clear();
    }
    // Sends one request on `s`; resolves with its reply, rejects with HttpError.
    function raw(s, obj) {
      return new Promise((resolve, reject) => {
        if (!s || s.readyState !== WebSocket.OPEN) { reject(lost()); return; }
        const tag = ++nextTag;
        const timer = setTimeout(() => {
          waiting.delete(tag);
          reject(new HttpError(0, "The server did not answer in time."));
          if (s === sock) s.close(4000, "no reply"); // a connection that does not answer is not trusted
        }, REQUEST_TIMEOUT_MS);
        waiting.set(tag, { resolve, reject, timer });
        s.send(JSON.stringify({ ...obj, tag }));
      });
    }
    function answer(reply) {
      // A reply the server could not tag (too_large) answers the oldest request.
      let tag = reply.tag;
      if (!waiting.has(tag)) tag = waiting.keys().next().value;
      const w = waiting.get(tag);
      if (!w) return;
      waiting.delete(tag);
      clearTimeout(w.timer);
      if (reply.ok) w.resolve(reply);
      else {
        const err = reply.error || {};
        w.reject(new HttpError(statusOf(err.code), err.message || ""));
      }
    }
    // Hands events to app.js (which saves them), then acknowledges pushed messages.
    function deliver(events, fromSync) {
      const saved = hooks.onEvents(events);
      if (!saved) hooks.onStatus("unsaved", "live (this browser has no room to keep history)");
      if (!fromSync && !caughtUp) return;
      for (const ev of events) {
        if (ev.event === "message" && ev.message) processed = Math.max(processed, Number(ev.message.id) || 0);
      }
      if (!fromSync) acknowledge();
    }
    async function acknowledge() {
      const s = sock;
      if (ackBusy || processed <= acked || !caughtUp) return;
      ackBusy = true;
      const upto = processed;
      try { await raw(s, { cmd: "ack", upto }); acked = Math.max(acked, upto); } catch (_) {
        // Not acknowledged: the next connection's SYNC after=processed does it.
      } finally { ackBusy = false; }
      if (s === sock) acknowledge();
    }
    async function login(s) {
      try {
        await raw(s, { cmd: "auth", token: session.token });
        if (s !== sock) return;
        backoff = 1000;
        ready.resolve();
        for (;;) {
          const r = await raw(s, { cmd: "sync", after: processed, limit: SYNC_PAGE });
          if (s !== sock) return;
          const list = Array.isArray(r.messages) ? r.messages : [];
          acked = Math.max(acked, processed);
          if (!list.length) break;
          deliver(list.map((m) => ({ event: "message", message: m })), true);
        }
        caughtUp = true;
        hooks.onStatus("live", "live");
        hooks.onSynced();
        acknowledge();
      } catch (e) {
        if (s !== sock || !running) return;
        if (e instanceof HttpError && e.status === 401) { t.stop(); hooks.onUnauthorized(e); return; }
        s.close(4000, "login failed");
      }
    }
    function connect() {
      retryTimer = null;
      if (!running) return;
      const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
      let s;
      try { s = new WebSocket(url, "gotalk.v1"); } catch (_) { closed(null); return; }
      sock = s;
      caughtUp = false;
      s.onopen = () => { if (s !== sock) return; opened = true; login(s); };
      s.onmessage = (e) => {
        if (s !== sock || typeof e.data !== "string") return;
        let obj;
        try { obj = JSON.parse(e.data); } catch (_) { return; }
        if (!obj || typeof obj !== "object") return;
        if ("ok" in obj) answer(obj);
        else if (typeof obj.event === "string") {
          if (obj.event === "shutdown") hooks.onStatus("retrying", "reconnecting…");
          else {
            // Events that arrive together are saved together (one write of the cache).
            batch.push(obj);
            if (!batchTimer) batchTimer = setTimeout(() => { batchTimer = null; flush(s); }, 0);
          }
        }
      };
      s.onclose = () => closed(s);
    }
    function flush(s) {
      const events = batch;
      batch = [];
      if (s === sock && events.length) deliver(events, false);
    }
    function closed(s) {
      if (s !== sock) return;
      flush(s);
      sock = null;
      failAll();
      newReady();
      if (!running) return;
      if (!opened) { running = false; hooks.onFallback(); return; }
      hooks.onStatus("retrying", "reconnecting…");
      retryTimer = setTimeout(connect, backoff * (0.75 + Math.random() / 2));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }

    t.start = () => {
      running = true;
      hooks.onStatus("connecting", "connecting…");
      connect();
    };
    t.stop = () => {
      running = false;
      if (retryTimer) clearTimeout(retryTimer);
      const s = sock;
      sock = null;
      failAll();
      if (s) { try { s.close(1000, "bye"); } catch (_) { /* already closed */ } }
    };
    // Requests wait for the connection to be logged in, as long as one request may take.
    t.call = async (cmd, args) => {
      let timer;
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new HttpError(0, "Cannot reach the server just now.")), REQUEST_TIMEOUT_MS);
      });
      try { await Promise.race([ready.promise, late]); } finally { clearTimeout(timer); }
      if (!running) throw lost();
      const obj = { cmd };
      for (const [k, v] of Object.entries(args || {})) if (v !== undefined && v !== null) obj[k] = v;
      return raw(sock, obj);
    };
    return t;
  }

  ns.wsTransport = wsTransport;
})();
